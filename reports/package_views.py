"""The QA2 package pages of a MOUS: the final checklist, the README (versions, edit,
generate), and each EB's qa2 report (request it, browse its files)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from assignments.datafiles import UnsafePath, eb_folder, listdir_confined, open_confined
from assignments.models import ExecutionBlock, Mous
from assignments.permissions import may_work_on, require_may_work_on
from qa2portal.errors import refusal_page
from reports import checklist, qa2_report, readme
from reports.models import Qa2Report, ReadmeVersion


@login_required
def checklist_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    items = checklist.checklist(mous)
    return render(
        request,
        "reports/checklist.html",
        {
            "mous": mous,
            "items": items,
            "complete": all(i.ok for i in items),
            "reports": {
                r.execution_block_id: r for r in Qa2Report.objects.filter(execution_block__mous=mous)
            },
            "ebs": list(mous.execution_blocks.order_by("uid")),
            "can_work": may_work_on(request.user, mous),
        },
    )


@login_required
def readme_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    versions = list(ReadmeVersion.objects.filter(mous=mous).select_related("author"))
    shown = versions[0] if versions else None
    if request.GET.get("v"):
        shown = next((v for v in versions if str(v.number) == request.GET["v"]), shown)
    return render(
        request,
        "reports/readme.html",
        {"mous": mous, "versions": versions, "shown": shown, "can_work": may_work_on(request.user, mous)},
    )


@login_required
@require_POST
@refusal_page(back="reports-readme", prefix="README not saved: ")
def readme_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    if request.POST.get("generate") == "1":
        version = readme.readme_generate(mous=mous, by=request.user)
    else:
        version = readme.readme_save(mous=mous, text=request.POST.get("text", ""), by=request.user)
    messages.success(request, f"README v{version.number} saved ({version.get_source_display().lower()}).")
    return redirect("reports-readme", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back="reports-checklist", prefix="qa2 report refused: ")
def qa2_request(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock, pk=request.POST.get("eb"), mous_id=pk)
    require_may_work_on(request.user, eb.mous)
    report = qa2_report.qa2_report_request(eb=eb, by=request.user)
    messages.info(request, f"qa2 report {report.pk} of {eb.uid} queued (run #{report.run_id})")
    return redirect("reports-checklist", pk=pk)


@login_required
def qa2_status(request: HttpRequest, pk: int) -> JsonResponse:
    mous = get_object_or_404(Mous, pk=pk)
    return JsonResponse(
        {
            "reports": [
                {"eb": r.execution_block.uid, "status": r.status, "error": r.error}
                for r in Qa2Report.objects.filter(execution_block__mous=mous).select_related(
                    "execution_block"
                )
            ]
        }
    )


@login_required
def qa2_page(request: HttpRequest, pk: int) -> HttpResponse:
    """An EB's qa2/ folder: textfile.txt and the PNGs."""
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    report = Qa2Report.objects.filter(execution_block=eb).first()
    folder = eb_folder(eb) / checklist.QA2_FOLDER
    text, pngs = "", []
    try:
        names = sorted(e.name for e in listdir_confined(base=folder) if e.kind == "file")
        pngs = [n for n in names if n.endswith(".png")]
        with open_confined(checklist.QA2_TEXTFILE, base=folder) as handle:
            text = handle.read(2_000_000).decode("utf-8", "replace")
    except (OSError, UnsafePath):
        pass
    return render(
        request, "reports/qa2.html", {"eb": eb, "mous": eb.mous, "report": report, "text": text, "pngs": pngs}
    )


@login_required
def qa2_file(request: HttpRequest, pk: int, name: str) -> HttpResponse | FileResponse:
    eb = get_object_or_404(ExecutionBlock, pk=pk)
    if "/" in name or not name.endswith((".png", ".txt")):
        raise Http404("only the qa2 folder's PNGs and text files")
    try:
        handle = open_confined(name, base=eb_folder(eb) / checklist.QA2_FOLDER)
    except UnsafePath as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain")
    except OSError:
        raise Http404(f"{name} does not exist") from None
    content_type = "image/png" if name.endswith(".png") else "text/plain; charset=utf-8"
    response = FileResponse(handle, filename=name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
