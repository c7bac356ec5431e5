"""Calibration pages: an EB's scripts and runs, versions and diffs, the live run page, products."""

import mimetypes
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from assignments.datafiles import (
    UnsafePath,
    from_data_root,
    open_confined,
    public_message,
    stat_confined,
    tail_confined,
)
from assignments.models import ExecutionBlock, Mous
from assignments.permissions import may_work_on, require_may_work_on
from calibration import flagversions, runs, script_generation, scripts
from calibration.api.serializers import RunProgressSerializer
from calibration.models import Product, Run, Script, ScriptGeneration, ScriptVersion
from calibration.rawdata import raw_data_is_separate
from qa2portal.errors import refusal_page
from qa2portal.ids import parse_id

LOG_TAIL_BYTES = 64 * 1024
SERVED_KINDS = {Product.Kind.PNG, Product.Kind.TXT, Product.Kind.LOG, Product.Kind.FITS}


def _int_list(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values if v.strip()]
    except ValueError:
        raise runs.RunRefused(f"step numbers must be integers, got {values}") from None


@login_required
def eb_page(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(
        ExecutionBlock.objects.select_related("mous__project", "mous__assignee__user"), pk=pk
    )
    script = Script.objects.filter(execution_block=eb, kind=Script.Kind.CALIBRATION).first()
    versions = list(script.versions.select_related("author")) if script else []
    selected = versions[0] if versions else None
    if request.GET.get("version") and script:
        selected = get_object_or_404(ScriptVersion, pk=request.GET["version"], script=script)
    context = {
        "eb": eb,
        "mous": eb.mous,
        "script": script,
        "versions": versions,
        "selected": selected,
        "runs": eb.runs.select_related("script_version", "created_by")[:20],
        "generation": _generation_to_show(eb, versions),
        "can_work": may_work_on(request.user, eb.mous),
        "flag_versions": flagversions.flag_versions(eb),
        "raw_separate": raw_data_is_separate(eb),
    }
    return render(request, "calibration/eb.html", context)


def _generation_to_show(eb: ExecutionBlock, versions: list[ScriptVersion]) -> ScriptGeneration | None:
    """The newest generation while it is pending or failed. A failure is stale, and hidden, once
    something later succeeded: a script version stored or a run that succeeded after it."""
    generation = eb.generations.first()
    if generation is None or generation.status == ScriptGeneration.Status.DONE:
        return None
    if generation.status == ScriptGeneration.Status.FAILED:
        since = generation.created_at
        if (
            any(v.created_at > since for v in versions)
            or eb.runs.filter(status=Run.Status.SUCCEEDED, created_at__gt=since).exists()
        ):
            return None
    return generation


@login_required
@require_POST
@refusal_page(back="calibration-eb")
def eb_generate(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    require_may_work_on(request.user, eb.mous)
    script_generation.script_generate_request(eb=eb, by=request.user)
    messages.info(request, "Generating the standard script from the data on a worker...")
    return redirect("calibration-eb", pk=eb.pk)


def _upload_refused(exc: Exception) -> str:
    if isinstance(exc, scripts.ScriptTooLarge):
        return f"{exc}; nothing stored"
    return f"Upload refused: {exc}"


@login_required
@require_POST
@refusal_page(back="calibration-eb", message=_upload_refused)
def eb_upload(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    require_may_work_on(request.user, eb.mous)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a script file to upload.")
        return redirect("calibration-eb", pk=eb.pk)
    assert upload.name is not None and upload.size is not None, "Django names and sizes every upload"
    scripts.check_script_size(upload.name, upload.size)  # before reading it
    version = scripts.script_upload(
        kind=Script.Kind.CALIBRATION,
        mous=eb.mous,
        eb=eb,
        data=upload.read(),
        filename=upload.name,
        by=request.user,
        note=request.POST.get("note", "")[:2000],
    )
    messages.success(request, f"Stored as version {version.number} ({len(version.step_numbers)} steps).")
    return redirect(f"{reverse('calibration-eb', args=[eb.pk])}?version={version.pk}")


def _eb_version_page(request: HttpRequest, pk: int) -> str:
    """The EB page showing the version the refused run was asked for (its id already checked)."""
    return f"{reverse('calibration-eb', args=[pk])}?version={parse_id(request.POST.get('version'))}"


@login_required
@require_POST
@refusal_page(back=_eb_version_page, prefix="Run refused: ")
def eb_run(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    require_may_work_on(request.user, eb.mous)
    version = get_object_or_404(ScriptVersion, pk=request.POST.get("version"), script__execution_block=eb)
    action = request.POST.get("action", "selected")
    if action == "scratch":
        run = runs.run_from_scratch(version=version, by=request.user)
    else:
        steps = [] if action == "all" else _int_list(request.POST.getlist("steps"))
        if action == "selected" and not steps:
            raise runs.RunRefused("select at least one step (or use Run all)")
        run = runs.run_create(version=version, steps=steps, by=request.user)
    return redirect("calibration-run", pk=run.pk)


@login_required
@require_POST
@refusal_page(back="calibration-eb", prefix="Restore refused: ")
def eb_restore_flags(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    require_may_work_on(request.user, eb.mous)
    run = flagversions.flagversion_restore(
        eb=eb, ms=request.POST.get("ms", ""), version_name=request.POST.get("name", ""), by=request.user
    )
    return redirect("calibration-run", pk=run.pk)


@login_required
def eb_products(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    kind = request.GET.get("kind", "")
    products = eb.products.select_related("step", "run").order_by("relpath", "-created_at")
    if kind:
        products = products.filter(kind=kind)
    latest: dict[str, Product] = {}
    for product in products:
        latest.setdefault(product.relpath, product)
    # (product, on disk, why it is not served): a later run may have removed what an earlier one made
    rows: list[tuple[Product, bool, str]] = []
    for product in sorted(latest.values(), key=lambda p: p.relpath):
        refused = ""
        try:
            stat_confined(product.relpath, base=_run_base(product.run))
            on_disk = True
        except UnsafePath as exc:  # a link the script planted: listed, never linked or served
            on_disk, refused = False, public_message(exc)
        except OSError:
            on_disk = False
        rows.append((product, on_disk, refused))
    context = {
        "eb": eb,
        "mous": eb.mous,
        "products": rows,
        "pngs": [p for p, on_disk, _ in rows if p.kind == Product.Kind.PNG and on_disk],
        "served": SERVED_KINDS,
        "kinds": Product.Kind.choices,
        "kind": kind,
    }
    return render(request, "calibration/products.html", context)


@login_required
def product_file(request: HttpRequest, pk: int) -> FileResponse | HttpResponse:
    """A product by its row (the API's products); pages link by path instead (eb_file)."""
    return _serve_product(request, get_object_or_404(Product.objects.select_related("run"), pk=pk))


@login_required
def eb_file(request: HttpRequest, pk: int, relpath: str) -> FileResponse | HttpResponse:
    """An EB's product by its path in the EB folder: the link stays the same across re-runs and
    always serves the file that is there now (every run records its own product rows)."""
    eb = get_object_or_404(ExecutionBlock, pk=pk)
    product = eb.products.filter(relpath=relpath).select_related("run").order_by("-created_at", "-pk").first()
    if product is None:
        raise Http404(f"no run of {eb.folder_name} made {relpath}")
    return _serve_product(request, product)


def _serve_product(request: HttpRequest, product: Product) -> FileResponse | HttpResponse:
    """Plots and text inline (text as text/plain: the browser shows it, never runs it); FITS and
    ?download=1 as an attachment."""
    if product.kind not in SERVED_KINDS:
        raise Http404("only plots, text, logs and FITS files are served; tables stay on the worker side")
    try:
        handle = open_confined(product.relpath, base=_run_base(product.run))
    except UnsafePath as exc:
        return _forbidden(product.relpath, exc)
    except OSError:
        raise Http404(f"{product.relpath} is no longer on disk: a later run removed it") from None
    path = Path(product.relpath)
    text = product.kind in (Product.Kind.TXT, Product.Kind.LOG)
    if product.kind == Product.Kind.PNG:
        content_type = "image/png"
    elif text:
        content_type = "text/plain; charset=utf-8"
    else:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    download = request.GET.get("download") == "1" or product.kind == Product.Kind.FITS
    response = FileResponse(handle, as_attachment=download, filename=path.name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-cache"  # the same path link serves a re-run's new file
    if text:
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
def version_page(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(
        ScriptVersion.objects.select_related("script__mous", "script__execution_block"), pk=pk
    )
    lines = version.text().splitlines()
    step_at = {s["start_line"]: s for s in version.parsed.get("steps", [])}
    context = {
        "version": version,
        "mous": version.script.mous,
        "lines": [(i + 1, line, step_at.get(i + 1)) for i, line in enumerate(lines)],
        "others": version.script.versions.exclude(pk=version.pk),
        "can_work": may_work_on(request.user, version.script.mous),
    }
    return render(request, "calibration/version.html", context)


@login_required
def version_download(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ScriptVersion.objects.select_related("script__execution_block"), pk=pk)
    name = version.script.filename.replace(".py", f".v{version.number}.py")
    response = HttpResponse(version.read_bytes(), content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
@refusal_page(back="calibration-version")
def version_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ScriptVersion.objects.select_related("script__mous"), pk=pk)
    require_may_work_on(request.user, version.script.mous)
    scripts.version_confirm_blocking(version=version, by=request.user)
    messages.success(request, f"v{version.number} may run as it is: the findings above stay on record.")
    return redirect("calibration-version", pk=version.pk)


@login_required
@require_POST
@refusal_page(back="calibration-version")
def version_convert(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ScriptVersion.objects.select_related("script__mous"), pk=pk)
    require_may_work_on(request.user, version.script.mous)
    converted = scripts.script_convert_python2(version=version, by=request.user)
    messages.success(request, f"Python 3 version stored as v{converted.number}: review the diff below.")
    return redirect(f"{reverse('calibration-version-diff', args=[version.pk])}?against={converted.pk}")


@login_required
def version_diff(request: HttpRequest, pk: int) -> HttpResponse:
    old = get_object_or_404(ScriptVersion.objects.select_related("script"), pk=pk)
    against = parse_id(request.GET.get("against", ""))
    if against is None:
        raise Http404("choose the version to compare with (?against=<id>)")
    new = get_object_or_404(ScriptVersion, pk=against, script=old.script)
    if new.number < old.number:
        old, new = new, old
    diff = scripts.version_diff(old, new)
    rows = []
    for tag, i1, i2, j1, j2 in diff["opcodes"]:
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            left = (i1 + k + 1, diff["a"][i1 + k]) if i1 + k < i2 else (None, "")
            right = (j1 + k + 1, diff["b"][j1 + k]) if j1 + k < j2 else (None, "")
            rows.append((tag, left, right))
    context = {
        "old": old,
        "new": new,
        "mous": old.script.mous,
        "rows": _collapse_equal(rows),
        "changed_steps": diff["changed_steps"],
        "step_titles": {s["number"]: s["title"] for s in new.parsed.get("steps", [])},
        "unified": "\n".join(diff["unified"]),
    }
    return render(request, "calibration/diff.html", context)


def _collapse_equal(rows: list, context: int = 3) -> list:
    """Keep changed rows and `context` equal rows around them; fold the rest into one marker row."""
    keep: set[int] = set()
    for index, (tag, _, _) in enumerate(rows):
        if tag != "equal":
            keep.update(range(index - context, index + context + 1))
    out, folded = [], 0
    for index, row in enumerate(rows):
        if index in keep:
            if folded:
                out.append(("fold", (None, f"{folded} unchanged lines"), (None, "")))
                folded = 0
            out.append(row)
        else:
            folded += 1
    if folded:
        out.append(("fold", (None, f"{folded} unchanged lines"), (None, "")))
    return out


@login_required
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(
        Run.objects.select_related("mous", "execution_block", "script_version__script", "created_by"), pk=pk
    )
    context = {
        "run": run,
        "mous": run.mous,
        "steps": list(run.steps.all()),
        "can_work": may_work_on(request.user, run.mous),
    }
    return render(request, "calibration/run.html", context)


def _log_tail(run: Run) -> str:
    """The end of the run's output log; a planted link or FIFO is named, never read."""
    try:
        data = tail_confined(run.output_log_name, base=_run_base(run), size=LOG_TAIL_BYTES)
    except UnsafePath as exc:
        return f"[{run.output_log_name} is not shown: {public_message(exc)}]"
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def _run_base(run: Run) -> Path:
    """The run's folder, the only place its files are read from (UnsafePath when outside DATA_ROOT)."""
    return from_data_root(run.folder)


def _forbidden(name: str, exc: UnsafePath) -> HttpResponse:
    response = HttpResponseForbidden(
        f"{name} is not served: {public_message(exc)}.\n", content_type="text/plain; charset=utf-8"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(Run.objects.select_related("created_by").prefetch_related("steps"), pk=pk)
    return JsonResponse({**RunProgressSerializer(run).data, "log_tail": _log_tail(run)})


@login_required
@require_POST
@refusal_page(back="calibration-run")
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("mous"), pk=pk)
    require_may_work_on(request.user, run.mous)
    runs.run_cancel(run=run, by=request.user)
    messages.info(request, "Cancel requested: the worker stops CASA within seconds.")
    return redirect("calibration-run", pk=run.pk)


@login_required
@require_POST
@refusal_page(back="calibration-run", prefix="Run refused: ", also=(ValueError,))
def run_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("mous", "script_version"), pk=pk)
    require_may_work_on(request.user, run.mous)
    raw = request.POST.get("from_step", "")
    if run.script_version is None:
        raise runs.RunRefused("this maintenance run cannot be re-run")
    if request.POST.get("action") == "scratch":
        new = runs.run_from_scratch(version=run.script_version, by=request.user)
    elif request.POST.get("action") == "all":
        new = runs.run_create(version=run.script_version, steps=[], by=request.user)
    else:
        new = runs.run_rerun(run=run, from_step=int(raw) if raw.strip() else None, by=request.user)
    return redirect("calibration-run", pk=new.pk)


@login_required
def run_log(request: HttpRequest, pk: int, which: str) -> FileResponse | HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    name = {"casa": run.casa_log_name, "output": run.output_log_name}.get(which)
    if name is None:
        raise Http404("logs are 'casa' or 'output'")
    try:
        handle = open_confined(name, base=_run_base(run))
    except UnsafePath as exc:
        return _forbidden(name, exc)
    except OSError:
        raise Http404(f"{name} does not exist (yet)") from None
    response = FileResponse(handle, filename=name, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
def mous_scripts(request: HttpRequest, pk: int) -> HttpResponse:
    """The EBs' calibration pages and the MOUS-level runs; links to combination and imaging."""
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    ebs = list(mous.execution_blocks.order_by("uid"))
    eb_rows = [
        {
            "eb": eb,
            "version": runs.calibration_version_of(eb),
            "run": Run.objects.filter(execution_block=eb, purpose=Run.Purpose.SCRIPT)
            .select_related("script_version")
            .order_by("-created_at", "-pk")
            .first(),
        }
        for eb in ebs
    ]
    context = {
        "mous": mous,
        "ebs": ebs,
        "eb_rows": eb_rows,
        "runs": mous.runs.filter(execution_block__isnull=True).select_related("script_version")[:10],
        "can_work": may_work_on(request.user, mous),
    }
    return render(request, "calibration/mous.html", context)


@login_required
@require_POST
@refusal_page(back="calibration-mous", prefix="Calibrate all refused: ")
def mous_calibrate_all(request: HttpRequest, pk: int) -> HttpResponse:
    """A run of every step of each EB's latest calibration version, all EBs at once (or none)."""
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    started = runs.runs_calibrate_all(mous=mous, by=request.user)
    messages.success(
        request,
        f"{len(started)} runs queued: " + ", ".join(f"#{r.pk}" for r in started) + " (one per worker slot)",
    )
    return redirect("calibration-mous", pk=mous.pk)


@login_required
def generation_status(request: HttpRequest, pk: int) -> JsonResponse:
    item = get_object_or_404(ScriptGeneration, pk=pk)
    return JsonResponse({"status": item.status, "error": item.error, "version": item.version_id})
