"""Intake pages: new project (PI, co-Is), project page, new MOUS with its EBs, add an EB.

DRMs and data analysts register; everyone signed in reads the project page. Thin: parse with
the form, call the intake service, show its field messages (nothing is saved on an error).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from assignments import intake
from assignments.intake_forms import EbForm, InvestigatorForm, MousForm, ProjectForm, apply_service_errors
from assignments.models import Mous, Project, user_may_ingest
from assignments.permissions import INTAKE_ONLY


def _require_may_ingest(request: HttpRequest) -> None:
    if not user_may_ingest(request.user):
        raise PermissionDenied(INTAKE_ONLY)


def _linked(project: Project) -> str:
    """ "PI linked to account x" for the success message (or that nobody is linked)."""
    people = sorted(project.investigators.select_related("user"), key=lambda i: (i.role != "pi", i.name))
    names = [f"{i.name} → {i.user.get_username()}" for i in people if i.user]
    return f" Linked to accounts: {', '.join(names)}." if names else " No investigator has an account here."


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    _require_may_ingest(request)
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = intake.project_create(
                code=data["code"],
                title=data["title"],
                pi_name=data["pi_name"],
                pi_email=data["pi_email"],
                cois=data["cois"],
                by=request.user,
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request, f"Project {project.code} registered (cycle {project.cycle})." + _linked(project)
            )
            return redirect("intake-project", pk=project.pk)
    status = 400 if form.is_bound else 200
    return render(request, "assignments/intake/project_new.html", {"form": form}, status=status)


def _project_page(request: HttpRequest, project: Project, *, form=None, status: int = 200) -> HttpResponse:
    may_ingest = user_may_ingest(request.user)
    context = {
        "project": project,
        "investigators": project.investigators.select_related("user__person"),
        "mous_list": project.mous_set.select_related("assignee__user").annotate(
            eb_count=Count("execution_blocks")
        ),
        "may_ingest": may_ingest,
        "investigator_form": (form or InvestigatorForm()) if may_ingest else None,
    }
    return render(request, "assignments/intake/project.html", context, status=status)


@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The project's PI and co-Is with their linked accounts, and its MOUS."""
    return _project_page(request, get_object_or_404(Project, pk=pk))


@login_required
@require_POST
def investigator_add(request: HttpRequest, pk: int) -> HttpResponse:
    _require_may_ingest(request)
    project = get_object_or_404(Project, pk=pk)
    form = InvestigatorForm(request.POST)
    if form.is_valid():
        try:
            added = intake.investigator_add(project=project, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            account = f" (account {added.user.get_username()})" if added.user else ""
            messages.success(request, f"{added.name} added as {added.get_role_display()}{account}.")
            return redirect("intake-project", pk=project.pk)
    return _project_page(request, project, form=form, status=400)


@login_required
def mous_new(request: HttpRequest) -> HttpResponse:
    """A MOUS with its OT request and EB uids; ?project=<code> fills the project in."""
    _require_may_ingest(request)
    form = MousForm(
        request.POST if request.method == "POST" else None,
        initial={"project": request.GET.get("project", "")},
    )
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        project, eb_uids = fields.pop("project"), fields.pop("eb_uids")
        try:
            mous = intake.mous_create(project=project, eb_uids=eb_uids, by=request.user, **fields)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            count = len(eb_uids)
            messages.success(
                request, f"MOUS {mous.uid} registered with {count} EB{'s' if count != 1 else ''}."
            )
            return redirect("assignments-mous", pk=mous.pk)
    status = 400 if form.is_bound else 200
    return render(request, "assignments/intake/mous_new.html", {"form": form}, status=status)


@login_required
def eb_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Add an execution block to the MOUS (its data is brought in afterwards)."""
    _require_may_ingest(request)
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    form = EbForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            eb = intake.eb_create(mous=mous, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"EB {eb.uid} added to {mous.uid}.")
            return redirect("assignments-mous", pk=mous.pk)
    status = 400 if form.is_bound else 200
    return render(request, "assignments/intake/eb_new.html", {"form": form, "mous": mous}, status=status)
