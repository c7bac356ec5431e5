"""Every QA threshold, in one place, each with where it comes from.

Sources: the ALMA pipeline's heuristics (reference/qa-heuristics-jira-sizing.md §3), the seeds
(the NAASC wiki pages on manual calibration), or our own choice with the reason given.
Django-free: the CASA side (reports/incasa/extract.py) and the web side (reports/qa.py) both
read it.
"""

# --- scores ------------------------------------------------------------------------------------
# The pipeline's "Unable to calculate QA scores".
CANNOT_ASSESS = -0.1
# The pipeline's colour bands (rendererutils SCORE_THRESHOLD_*): <= RED red, <= YELLOW yellow,
# <= BLUE blue, above green.
RED, YELLOW, BLUE = 0.33, 0.66, 0.90
# A finding is open (asks the reducer to act) when it is not green.
OPEN_SCORE = BLUE

# --- Tsys --------------------------------------------------------------------------------------
# hifa_tsysflag flags an antenna whose Tsys median is >= 2.0x the array's (fnm_limit). We warn
# from 1.5x, scored yellow rather than red, because a reducer flags by eye from the plots and a
# 1.5-2x antenna is exactly the one worth a look before bandpass; from 2.0x the score is red
# (where the pipeline would have flagged).
TSYS_WARN_RATIO = 1.5
TSYS_FLAG_RATIO = 2.0  # pipeline: hifa_tsysflag fnm_limit

# --- WVR ---------------------------------------------------------------------------------------
# hifa_wvrgcalflag: an antenna whose wvrgcal Disc or RMS exceeds 500 µm is flagged (disc_max,
# rms_max).
WVR_DISC_MAX_UM = 500.0
# Our choice: an antenna's own WVR "makes it worse" when its calibrators' phase rms grows by
# more than 5% and by more than 2° (both, so that a 1° wobble on a 10° antenna is not reported).
WVR_WORSE_RATIO = 1.05
WVR_WORSE_DEG = 2.0

# Dead antennas (never a reference): calibration.antennas.LIVE_AMPLITUDE_FRACTION, shared with
# the script generator's refant rule.

# --- bandpass ----------------------------------------------------------------------------------
# Seeds (NAASC wiki): channel-to-channel variation > 5% -> average channels (solint 'inf,Nch').
CHAN2CHAN_LIMIT = 0.05
# Our choice: a bandpass amplitude below 70% of the antenna's own median level over a run of
# channels is a notch (the simulator's and real notches are 40-60% deep; ripple stays > 90%).
NOTCH_DEPTH = 0.7
# Our choice: a phase step between channels above max(20°, 5x the array's typical step).
PHASE_JUMP_MIN_DEG = 20.0
PHASE_JUMP_TYPICAL_FACTOR = 5.0

# --- gains -------------------------------------------------------------------------------------
# Our choice: an antenna with >= 90% of its solutions flagged in every spw has no usable gains.
GAINS_DEAD_FLAGGED = 0.9
# Our choice: an amplitude gain 3x off the array's median (either way) is a bad antenna.
GAINS_AMP_OFF_FACTOR = 3.0
# Pipeline (hifa_spwphaseup score_decoherence_assessment): < 30° -> 1.0, 30-50° -> 0.9,
# 50-70° -> 1 - rms/100, > 70° -> 0.3.
PHASE_RMS_GOOD_DEG = 30.0
PHASE_RMS_FAIR_DEG = 50.0
PHASE_RMS_POOR_DEG = 70.0

# --- flux --------------------------------------------------------------------------------------
# Pipeline (hifa_gfluxscale): flux SNR scored linearly from 5 (0.66) to 26.25 (1.0).
FLUX_SNR_LOW = 5.0
FLUX_SNR_HIGH = 26.25
# Our choice: a spw whose derived flux is >= 10% off the fitted spectrum is inconsistent
# (fluxscale's typical errors on ALMA calibrators are a few %).
FLUX_SPW_OFF = 0.10
# Our choice: a derived flux within 15% of the catalogue value (scaled to the spw with the
# catalogue's spectral index) is fine, 30% or more off is red, yellow to red in between. ALMA's
# grid sources are variable quasars whose flux changes by ~10% over weeks and the catalogue value
# is an interpolation between monitoring measurements, so QA2 practice accepts ~10-15%; twice that
# points at a wrong setjy model, a bad flux calibration or a wrong catalogue entry.
FLUX_CATALOGUE_OK = 0.15
FLUX_CATALOGUE_BAD = 0.30

# --- flagging ----------------------------------------------------------------------------------
# Pipeline (score_online_shadow_template_agents): a priori flags scored 1.0 at 24%, 0.0 at 79%.
FLAGS_APRIORI_GOOD = 0.24
FLAGS_APRIORI_BAD = 0.79
# Pipeline (score_fraction_newly_flagged): up to 5% newly flagged is fine.
FLAGS_NEW_GOOD = 0.05

# --- bandpass SNR (aU.bandpassPreAverage's job) ------------------------------------------------
# Pipeline (hifa_bandpass): a bandpass solution per channel wants SNR >= bpsnr = 50, and below
# minbpsnr = 20 the pipeline pre-averages channels; it never averages below minbpnchan = 8
# channels per spw.
BANDPASS_MIN_SNR = 20.0
BANDPASS_TARGET_SNR = 50.0
BANDPASS_MIN_SOLUTIONS = 8

# --- gains SNR ---------------------------------------------------------------------------------
# Our choice: a spw whose median gain SNR is below 20 and below a third of the best spw's has too
# little signal on its own (gaincal's minsnr=3 flags single solutions; this is the spw as a whole,
# and the pipeline's hifa_spwphaseup combines spws below phasesnr=32 for the same reason).
GAINS_LOW_SNR = 20.0
GAINS_SNR_FRACTION_OF_BEST = 1 / 3
# Our choice: a spw narrower than a quarter of the widest has about half the SNR or less.
NARROW_SPW_FRACTION = 0.25

# --- quack -------------------------------------------------------------------------------------
# Our choice: a scan's first integration below 80% of the scan's later median amplitude is an
# unsettled start (antennas still slewing or the correlator settling) and should be quacked;
# real settled scans scatter by a few % between integrations.
QUACK_LOW = 0.8

# --- atmospheric lines -------------------------------------------------------------------------
# Our choice: the ATM model's transmission dipping > 5% below its spw median marks a line, and a
# Tsys rise of > 10% at that frequency is that line, which is expected and never flagged.
ATM_LINE_DIP = 0.05
ATM_TSYS_RISE = 0.10
# --- calibrated visibilities (the `.cal` split) ------------------------------------------------
# Seeds (NAASC wiki): "the phase and bandpass calibrator should be point sources with a flat
# spectrum in each spw": corrected amplitude and phase flat vs frequency, time and uv distance.
# The numbers are our choice, each with its reason.
# Amplitude vs frequency: the seeds' 5% rule for a bandpass's channel-to-channel variation,
# applied to what the bandpass left: a smoothed calibrated spectrum departing > 5% from its
# median (over >= 1/64 of the spw) is a feature (atmospheric line, bad channels); 10% is red.
CAL_AMP_DEV_LIMIT = 0.05
CAL_AMP_DEV_BAD = 0.10
# ... and only when it is also > 5x the thermal noise of that smoothed spectrum, so that a weak
# calibrator's noise is not called a ripple.
CAL_NOISE_SIGMAS = 5.0
# Phase vs frequency: after bandpass the calibrators' phase is flat; a 10° rms across the band
# (a residual delay shows as a slope of ~35° end to end) costs ~1.5% coherence
# (exp(-s²/2) for s = 10° = 0.17 rad → 0.985) and is what plotms shows as "not flat"; 20° (6%) is red.
CAL_PHASE_FREQ_RMS_DEG = 10.0
CAL_PHASE_FREQ_BAD_DEG = 20.0
# Phase vs time: the calibrators are phase-calibrated per integration, so their corrected phase
# should scatter only by noise. The same 10° / 20° (coherence) for the array average; for one
# antenna (the mean of its baselines, which hides less) 15° / 30°, the range the brief names
# for a calibrated calibrator (10-15°), at its upper end because one antenna is noisier.
CAL_PHASE_TIME_RMS_DEG = 10.0
CAL_PHASE_TIME_BAD_DEG = 20.0
CAL_ANT_PHASE_RMS_DEG = 15.0
CAL_ANT_PHASE_BAD_DEG = 30.0
# Amplitude vs time: amplitude gains are solved per scan (solint inf); 10% rms of the
# per-integration amplitude is more than the slow gain drift they leave (a few %), 20% is red.
CAL_AMP_TIME_RMS = 0.10
CAL_AMP_TIME_BAD = 0.20
# Our choice: one antenna whose calibrated amplitude on a calibrator is > 20% off the array's
# is suspect (after fluxscale every antenna sees the same point source: a few % at most).
CAL_ANT_AMP_OFF = 0.20
# Amplitude vs uv distance: a point source is flat; outer third of the uv range / inner third
# off by > 10% means a resolved calibrator or decorrelation on long baselines; 25% is red.
CAL_UV_RATIO_OFF = 0.10
CAL_UV_RATIO_BAD = 0.25
# Our choice: more than half of a calibrator's data flagged in the calibrated split leaves its
# plots (and the solutions behind them) on too little data.
CAL_FLAGGED_HIGH = 0.5
# Our choice: the first integration of each scan at < 90% of the rest of its scan (median over
# scans) is a scan-start dip (antennas still settling): quack one integration. 10% is the
# amplitude-vs-time limit above; the dip is scored separately because its fix is known.
CAL_SCAN_START_RATIO = 0.9
