# One image for web and worker: Python 3.11 (casatools has no newer cp311 wheel) + real CASA.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 \
    DATA_ROOT=/data/qa2 QA2_VAR_DIR=/data/var
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 qa2
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=True python manage.py collectstatic --noinput \
    && mkdir -p /data/qa2 /data/var && chown -R qa2:qa2 /data
USER qa2
EXPOSE 8000
CMD ["gunicorn", "qa2portal.wsgi", "-b", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
