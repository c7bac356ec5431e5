"""Forms of the intake pages: they parse what a DRM types; the intake services decide."""

import re

from django import forms
from django.core.exceptions import ValidationError

from assignments.models import Investigator, Mous, Project

# "Ada Lovelace <ada@example.org>" (the way mail clients write an address)
PERSON_LINE = re.compile(r"^(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>$")


def parse_people(text: str) -> list[tuple[str, str]]:
    """One "Name <e-mail>" per line -> [(name, e-mail)]; blank lines are skipped."""
    people, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = PERSON_LINE.match(line)
        if match is None:
            errors.append(f"line {number}: write one co-I as 'Name <e-mail>', got {line!r}.")
            continue
        people.append((match["name"].strip(), match["email"].strip()))
    if errors:
        raise ValidationError(errors)
    return people


def parse_uids(text: str) -> list[str]:
    """One uid per line (commas and spaces also separate); blank lines are skipped."""
    return [uid for uid in re.split(r"[\s,]+", text) if uid]


def apply_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's field messages on the form's fields (unknown fields: on the form)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, messages in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, messages)


class ProjectForm(forms.Form):
    code = forms.CharField(max_length=20, help_text="e.g. 2019.1.01234.S; the cycle follows from it")
    title = forms.CharField(max_length=300, required=False)
    pi_name = forms.CharField(label="PI name", max_length=200)
    pi_email = forms.EmailField(label="PI e-mail", help_text="links the PI to the account with this e-mail")
    cois = forms.CharField(
        label="co-Is",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Carl Sagan <carl@example.org>"}),
        help_text="one per line: Name <e-mail>",
    )

    def clean_cois(self) -> list[tuple[str, str]]:
        return parse_people(self.cleaned_data["cois"])


class InvestigatorForm(forms.Form):
    name = forms.CharField(max_length=200)
    email = forms.EmailField(label="e-mail")
    role = forms.ChoiceField(choices=Investigator.Role.choices, initial=Investigator.Role.COI)


class MousForm(forms.Form):
    project = forms.CharField(label="Project code", max_length=20)
    uid = forms.CharField(label="MOUS uid", max_length=64, help_text="uid://A001/X13e/X1fe")
    sb_name = forms.CharField(label="SB name", max_length=120, help_text="e.g. HD_163296_a_06_TM1")
    science_goal = forms.CharField(max_length=120, required=False)
    band = forms.IntegerField(
        min_value=1,
        max_value=10,
        error_messages={"min_value": "ALMA bands are 1 to 10.", "max_value": "ALMA bands are 1 to 10."},
    )
    array = forms.ChoiceField(choices=Mous.Array.choices)
    representative_frequency_ghz = forms.FloatField(label="Representative frequency (GHz)", required=False)
    requested_rms_mjy = forms.FloatField(label="Requested rms (mJy/beam)", required=False)
    rms_bandwidth_mhz = forms.FloatField(label="Bandwidth for the rms (MHz)", required=False)
    resolution_min_arcsec = forms.FloatField(label="Min angular resolution (arcsec)", required=False)
    resolution_max_arcsec = forms.FloatField(label="Max angular resolution (arcsec)", required=False)
    goal = forms.ChoiceField(choices=Mous.Goal.choices, initial=Mous.Goal.CONTINUUM)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    eb_uids = forms.CharField(
        label="EB uids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "uid://A002/X1234/X5"}),
        help_text="one per line",
    )

    def clean_project(self) -> Project:
        code = self.cleaned_data["project"].strip()
        project = Project.objects.filter(code=code).first()
        if project is None:
            raise ValidationError(f"No project {code}: register the project first.")
        return project

    def clean_eb_uids(self) -> list[str]:
        return parse_uids(self.cleaned_data["eb_uids"])


class EbForm(forms.Form):
    uid = forms.CharField(label="EB uid", max_length=64, help_text="uid://A002/X1234/X5")
    observed_at = forms.DateTimeField(
        label="Observed (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
