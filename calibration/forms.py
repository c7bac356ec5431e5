"""Input for the calibrator flux catalogue page (the rules are CalibratorFlux.clean's)."""

from django import forms

from calibration.models import CalibratorFlux


class CalibratorFluxForm(forms.ModelForm):
    class Meta:
        model = CalibratorFlux
        fields = ["source", "freq_ghz", "flux_jy", "spectral_index", "measured_on", "provenance"]
        widgets = {
            "measured_on": forms.DateInput(attrs={"type": "date"}),
            "provenance": forms.Textarea(attrs={"rows": 2}),
        }

    def save_by(self, user) -> CalibratorFlux:
        """Save the valid entry, recording who edited it last."""
        entry = self.save(commit=False)
        entry.updated_by = user
        entry.save()
        return entry
