"""Input parsing for the whiteboard and MOUS pages (the API reuses WhiteboardFilter)."""

import re
from functools import partial

from django import forms
from django.db.models import Q, QuerySet

from assignments.models import Mous, MousState, Person
from assignments.services import EDITABLE_FIELDS
from qa2portal.ids import parse_id

UNASSIGNED = "none"

# sort key -> ORDER BY; "-key" reverses. Ties are broken by pk so pages are stable.
SORTS = {
    "age": ("state_changed_at",),
    "due": ("due_date",),
    "uid": ("uid",),
    "project": ("project__code", "uid"),
    "state": ("state", "state_changed_at"),
    "reducer": ("assignee__initials", "uid"),
}
SORT_CHOICES = [(key, key) for key in SORTS] + [(f"-{key}", f"-{key}") for key in SORTS]
PAGE_SIZES = (25, 50, 100, 200)
CYCLE_NUMBER_RE = re.compile(r"\d{1,2}")
CYCLE_YEAR_RE = re.compile(r"(?P<year>\d{4})(?:\.(?P<call>[01aA]))?")
FIRST_PROPOSAL_YEAR = 2011  # cycle 0


class WhiteboardFilter(forms.Form):
    """Filters, search, sort and page size of the whiteboard and of GET /api/mous/."""

    state = forms.ChoiceField(required=False, choices=[("", "any state"), *MousState.choices])
    reducer = forms.CharField(required=False, max_length=150, help_text="username, or 'none'")
    cycle = forms.CharField(
        required=False,
        max_length=20,
        strip=True,
        help_text="cycle number (7), or proposal year of the project codes (2019, 2019.1, 2019.A)",
    )
    band = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=10,
        error_messages={"min_value": "ALMA bands are 1 to 10.", "max_value": "ALMA bands are 1 to 10."},
    )
    array = forms.ChoiceField(required=False, choices=[("", "any array"), *Mous.Array.choices])
    q = forms.CharField(required=False, max_length=100, label="Search", strip=True)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(
        required=False,
        coerce=int,
        choices=[(n, n) for n in PAGE_SIZES],
        # Django returns empty_value as given (any type); the stubs allow only str | None.
        empty_value=50,  # type: ignore[arg-type]
    )

    def clean_cycle(self) -> Q | None:
        """A DRM reads "2019" off a 2019.1.xxxxx.S code: accept that as well as the cycle number."""
        value = self.cleaned_data["cycle"]
        if not value:
            return None
        if CYCLE_NUMBER_RE.fullmatch(value):
            return Q(project__cycle=int(value))
        match = CYCLE_YEAR_RE.fullmatch(value)
        if match and FIRST_PROPOSAL_YEAR <= int(match["year"]) <= 2099:
            call = f".{match['call'].upper()}." if match["call"] else "."
            return Q(project__code__startswith=f"{match['year']}{call}")
        raise forms.ValidationError(
            f"{value!r} is neither a cycle number (e.g. 7) nor a proposal year as in the "
            "project codes (e.g. 2019, 2019.1 or 2019.A)."
        )

    def apply(self, queryset: QuerySet[Mous]) -> QuerySet[Mous]:
        """`queryset` narrowed by the valid fields (invalid ones are reported, not applied)."""
        data = getattr(self, "cleaned_data", {})
        if data.get("state"):
            queryset = queryset.filter(state=data["state"])
        reducer = data.get("reducer")
        if reducer == UNASSIGNED:
            queryset = queryset.filter(assignee__isnull=True)
        elif reducer:
            queryset = queryset.filter(assignee__user__username=reducer)
        if data.get("cycle") is not None:
            queryset = queryset.filter(data["cycle"])
        if data.get("band") is not None:
            queryset = queryset.filter(band=data["band"])
        if data.get("array"):
            queryset = queryset.filter(array=data["array"])
        if data.get("q"):
            term = data["q"]
            queryset = queryset.filter(
                Q(uid__icontains=term) | Q(project__code__icontains=term) | Q(sb_name__icontains=term)
            )
        sort = data.get("sort") or "age"
        fields = SORTS[sort.lstrip("-")]
        if sort.startswith("-"):
            fields = tuple(f"-{f}" for f in fields)
        return queryset.order_by(*fields, "pk")


def reducer_choices() -> QuerySet[Person]:
    return Person.objects.select_related("user").order_by("user__username")


class VersionField(forms.IntegerField):
    widget = forms.HiddenInput

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, **kwargs)


class TransitionForm(forms.Form):
    to = forms.ChoiceField(
        choices=MousState.choices, error_messages={"invalid_choice": "%(value)s is no state."}
    )
    note = forms.CharField(required=False, max_length=2000)
    version = VersionField(required=False)
    # A DRM moving on although the checklist is not complete says why (kept on the move).
    override_reason = forms.CharField(required=False, max_length=2000)


class AssignForm(forms.Form):
    reducer = forms.ModelChoiceField(
        queryset=reducer_choices(), error_messages={"invalid_choice": "Choose a reducer from the list."}
    )
    note = forms.CharField(required=False, max_length=2000)
    version = VersionField(required=False)


class UnassignForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000)
    version = VersionField(required=False)


class MousIdsField(forms.TypedMultipleChoiceField):
    """MOUS ids: any id is a valid value here; the service checks them (one query), not by
    listing 10,000 choices."""

    def valid_value(self, value: object) -> bool:
        return parse_id(value) is not None


class BulkAssignForm(forms.Form):
    mous = MousIdsField(
        coerce=int, choices=(), error_messages={"required": "Tick at least one MOUS to assign."}
    )
    reducer = forms.ModelChoiceField(
        queryset=reducer_choices(), error_messages={"required": "Choose the reducer to assign to."}
    )
    note = forms.CharField(required=False, max_length=2000)


class MousEditForm(forms.ModelForm):
    version = VersionField()

    class Meta:
        model = Mous
        fields = EDITABLE_FIELDS
        # Weblog links are https; say so explicitly (Django 6 makes it the default).
        field_classes = {"weblog_url": partial(forms.URLField, assume_scheme="https")}
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 4}),
        }
