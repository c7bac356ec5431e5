"""HTML pages: the DRM whiteboard, My work, the MOUS page and its forms (thin: parse, call, render)."""

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from assignments import services
from assignments.forms import (
    PAGE_SIZES,
    SORT_CHOICES,
    UNASSIGNED,
    AssignForm,
    BulkAssignForm,
    MousEditForm,
    TransitionForm,
    UnassignForm,
    WhiteboardFilter,
    reducer_choices,
)
from assignments.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    ExecutionBlock,
    Mous,
    MousState,
    StaleVersion,
    StateChange,
    person_of,
    user_is_manager,
)
from assignments.permissions import MANAGER_ONLY, may_work_on
from assignments.selectors import WhiteboardRow, whiteboard_rows
from qa2portal.errors import error_status, error_text, refusal_page

OPEN_STATES = frozenset(ACTIVE_STATES | {MousState.BLOCKED})

# Where the next action of each state is done: a URL name taking the MOUS pk, and a fragment
# (the form on the MOUS page). Names, not imports: assignments sits below calibration.
# ASSIGNED / CALIBRATING go straight to the EB page when the MOUS has one EB.
S = MousState
NEXT_ACTION_TARGET: dict[str, tuple[str, str]] = {
    S.NEW: ("assignments-mous", "#assign-form"),
    S.ASSIGNED: ("calibration-mous", ""),
    S.CALIBRATING: ("calibration-mous", ""),
    S.IMAGING: ("calibration-mous", "#imaging"),
    S.READY_FOR_REVIEW: ("assignments-mous", "#transition-form"),
    S.REVIEWING: ("assignments-mous", "#transition-form"),
    S.QA2_PASS: ("assignments-mous", "#transition-form"),
    S.QA2_SEMIPASS: ("assignments-mous", "#transition-form"),
    S.QA2_FAIL: ("assignments-mous", "#transition-form"),
    S.DELIVERING: ("assignments-mous", "#transition-form"),
    S.BLOCKED: ("assignments-mous", "#transition-form"),
}
EB_LEVEL_STATES = frozenset({S.ASSIGNED, S.CALIBRATING})


@dataclass(frozen=True)
class NextAction:
    who: str  # "DRM", "Reducer", or "" when anyone with the rights may do it
    what: str
    url: str  # "" when there is nothing to do, or the user may not do it


def next_action(mous: Mous, user, *, single_eb: int | None, here: bool = False) -> NextAction:
    """What `mous` needs next, with the page where `user` can do it (if they may).

    `single_eb`: the pk of the MOUS's only EB (None with 0 or several). `here`: the caller is
    the MOUS page itself, so its own forms are reached by fragment alone.
    """
    who, _, what = mous.next_action.rpartition(": ")
    target = NEXT_ACTION_TARGET.get(mous.state)
    allowed = user_is_manager(user) if who == "DRM" else may_work_on(user, mous)
    if target is None or not allowed:
        return NextAction(who, what, "")
    name, fragment = target
    if mous.state in EB_LEVEL_STATES and single_eb is not None:
        return NextAction(who, what, reverse("calibration-eb", args=[single_eb]))
    if name == "assignments-mous" and here:
        return NextAction(who, what, fragment)
    return NextAction(who, what, reverse(name, args=[mous.pk]) + fragment)


def jira_browse_base() -> str:
    """Prefix of a ticket link, or "" when JIRA is not configured (keys are shown as text)."""
    return f"{settings.JIRA_BASE_URL.rstrip('/')}/browse/" if settings.JIRA_BASE_URL else ""


def _require_manager(request: HttpRequest) -> None:
    if not user_is_manager(request.user):
        raise PermissionDenied(MANAGER_ONLY)


@login_required
def whiteboard(request: HttpRequest) -> HttpResponse:
    """Every MOUS with state, reducer, EBs, age, due date, latest run; filters, counts, bulk assign."""
    form = WhiteboardFilter(request.GET)
    form.is_valid()  # invalid fields are shown as errors and not applied
    rows = form.apply(whiteboard_rows())
    paginator = Paginator(rows, form.cleaned_data.get("per_page") or 50)
    page = paginator.get_page(request.GET.get("page"))
    # One GROUP BY gives both the counts per state and each person's open workload.
    state_counts: dict[str, int] = defaultdict(int)
    workload: dict[int | None, int] = defaultdict(int)
    grouped = Mous.objects.order_by().values_list("state", "assignee_id").annotate(n=Count("pk"))
    for state, assignee_id, n in grouped:
        state_counts[state] += n
        if state in OPEN_STATES:
            workload[assignee_id] += n
    people = [(person, workload[person.pk]) for person in reducer_choices()]  # with their open MOUS
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "assignments/whiteboard.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "state_counts": [
                (state, label, state_counts.get(state, 0)) for state, label in MousState.choices
            ],
            "people": people,
            "unassigned": UNASSIGNED,
            "is_manager": user_is_manager(request.user),
            "total": sum(state_counts.values()),
            "jira_base": jira_browse_base(),
            "state_choices": MousState.choices,
            "array_choices": Mous.Array.choices,
            "sort_choices": SORT_CHOICES,
            "page_sizes": PAGE_SIZES,
        },
    )


@login_required
def my_work(request: HttpRequest) -> HttpResponse:
    """The signed-in reducer's MOUS and what each needs next."""
    person = person_of(request.user)
    mine: list[WhiteboardRow] = []
    if person is not None:
        mine = list(
            whiteboard_rows()
            .filter(assignee=person)
            .exclude(state__in=TERMINAL_STATES)
            .order_by("due_date", "state_changed_at", "pk")
        )
    single = _single_eb_of(mine)
    rows = [(mous, next_action(mous, request.user, single_eb=single.get(mous.pk))) for mous in mine]
    return render(request, "assignments/my_work.html", {"rows": rows, "person": person})


def _single_eb_of(rows: list[WhiteboardRow]) -> dict[int, int]:
    """MOUS pk -> pk of its EB, for the MOUS among `rows` that have exactly one (one query)."""
    ids = [m.pk for m in rows if m.eb_count == 1]
    return dict(ExecutionBlock.objects.filter(mous_id__in=ids).values_list("mous_id", "pk"))


def _mous_page(request: HttpRequest, mous: Mous, *, error: str = "", status: int = 200) -> HttpResponse:
    user = request.user
    is_manager = user_is_manager(user)
    runs = _runs_of(mous)
    latest: dict[int, object] = {}
    for run in runs:  # newest first
        latest.setdefault(run.execution_block_id, run)
    ebs = [(eb, latest.get(eb.pk)) for eb in mous.execution_blocks.all()]  # with its newest run
    context = {
        "mous": mous,
        "ebs": ebs,
        "next": next_action(mous, user, single_eb=ebs[0][0].pk if len(ebs) == 1 else None, here=True),
        "timeline": StateChange.objects.filter(mous=mous).select_related("changed_by"),
        "assignments": mous.assignments.select_related("reducer__user", "assigned_by", "ended_by"),
        "runs": runs,
        "moves": [(move, MousState(move).label) for move in mous.moves_for(user)],
        "is_manager": is_manager,
        "may_work": may_work_on(user, mous),
        "assign_form": AssignForm(initial={"version": mous.version}) if is_manager else None,
        "error": error,
    }
    return render(request, "assignments/mous_detail.html", context, status=status)


def _runs_of(mous: Mous) -> list:
    # The 20 newest calibration runs, through Run's reverse relation (`runs`): no import of
    # calibration, which sits above this app.
    return list(mous.runs.select_related("execution_block").order_by("-created_at", "-pk")[:20])


@login_required
def mous_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Request figures, EBs, runs, the lifecycle timeline, assignment history and allowed actions."""
    return _mous_page(request, get_object_or_404(whiteboard_rows(), pk=pk))


def _refused(request: HttpRequest, exc: Exception, pk: int) -> HttpResponse:
    """Re-render the MOUS page with the reason and the error's HTTP status; nothing changed."""
    fresh = whiteboard_rows().get(pk=pk)
    return _mous_page(request, fresh, error=error_text(exc), status=error_status(exc))


# The MOUS verbs: a domain error or a service's ValidationError is the MOUS page with the reason.
refused_on_mous_page = refusal_page(_refused, also=(ValidationError,))


def _form_errors(form) -> str:
    return " ".join(
        f"{'' if name == '__all__' else name + ': '}{' '.join(errs)}" for name, errs in form.errors.items()
    )


@login_required
@require_POST
@refused_on_mous_page
def mous_transition(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    if not may_work_on(request.user, mous):
        raise PermissionDenied("This MOUS is not assigned to you.")
    form = TransitionForm(request.POST)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    mous.transition(
        form.cleaned_data["to"],
        by=request.user,
        note=form.cleaned_data["note"],
        expected_version=form.cleaned_data["version"],
        check_role=True,
        override_reason=form.cleaned_data["override_reason"],
    )
    messages.success(request, f"{mous.uid} is now {mous.get_state_display()}.")
    return redirect("assignments-mous", pk=mous.pk)


@login_required
@require_POST
@refused_on_mous_page
def mous_assign(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    reducer = form.cleaned_data["reducer"]
    services.mous_assign(
        mous=mous,
        reducer=reducer,
        by=request.user,
        note=form.cleaned_data["note"],
        expected_version=form.cleaned_data["version"],
    )
    messages.success(request, f"{mous.uid} assigned to {reducer.user.get_username()}.")
    return redirect("assignments-mous", pk=mous.pk)


@login_required
@require_POST
@refused_on_mous_page
def mous_unassign(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    mous = get_object_or_404(Mous, pk=pk)
    form = UnassignForm(request.POST)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    services.mous_unassign(
        mous=mous,
        by=request.user,
        note=form.cleaned_data["note"],
        expected_version=form.cleaned_data["version"],
    )
    messages.success(request, f"{mous.uid} is no longer assigned.")
    return redirect("assignments-mous", pk=mous.pk)


@login_required
def mous_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit the request figures and notes; the hidden version makes a concurrent edit fail (412)."""
    _require_manager(request)
    mous = get_object_or_404(Mous, pk=pk)
    status = 200
    if request.method == "POST":
        form = MousEditForm(request.POST, instance=Mous.objects.get(pk=pk))
        if form.is_valid():
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "version"}
            try:
                services.mous_edit(
                    mous=mous, by=request.user, expected_version=form.cleaned_data["version"], changes=changes
                )
            except StaleVersion as exc:
                form.add_error(None, str(exc))
                status = exc.status
            else:
                messages.success(request, f"{mous.uid} saved.")
                return redirect("assignments-mous", pk=mous.pk)
        else:
            status = 400
    else:
        form = MousEditForm(instance=mous, initial={"version": mous.version})
    return render(request, "assignments/mous_edit.html", {"mous": mous, "form": form}, status=status)


def _bulk_back(request: HttpRequest) -> str:
    """Back to the whiteboard page the bulk assignment came from (?next=, same host only)."""
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return back if back and safe else reverse("assignments-whiteboard")


@login_required
@require_POST
@refusal_page(back=_bulk_back, prefix="Nothing assigned. ", also=(ValidationError,))
def whiteboard_bulk_assign(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = BulkAssignForm(request.POST)
    target = _bulk_back(request)
    if not form.is_valid():
        messages.error(request, f"Nothing assigned. {_form_errors(form)}")
        return redirect(target)
    done = services.mous_bulk_assign(
        mous_ids=form.cleaned_data["mous"],
        reducer=form.cleaned_data["reducer"],
        by=request.user,
        note=form.cleaned_data["note"],
    )
    messages.success(
        request, f"{len(done)} MOUS assigned to {form.cleaned_data['reducer'].user.get_username()}."
    )
    return redirect(target)
