"""The DRM registers a project, a MOUS and its EBs from the pages in headless Chromium; the PI's
own account is refused the MOUS with the rule named on the page, another reducer gets it."""

import re

import pytest
from playwright.sync_api import Page, expect

from assignments.models import Mous

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory


def test_drm_registers_a_project_mous_and_ebs_and_the_pi_is_refused(world, page: Page, live_server, login):
    login("drm1", PASSWORD)
    expect(page).to_have_url(re.compile(r"/whiteboard/$"))

    # New project: the PI's e-mail is the reducer red1's account, in another case.
    page.click("#new-project")
    page.fill("input[name=code]", "2024.1.00777.S")
    page.fill("input[name=title]", "Outflows in Serpens")
    page.fill("input[name=pi_name]", "Rosa Reducer")
    page.fill("input[name=pi_email]", "Red1@Example.org")
    page.fill("textarea[name=cois]", "Carl Co <carl@example.org>\nnot a co-I line")
    page.click("#project-form button[type=submit]")
    expect(page.locator("[data-field=cois] .error")).to_contain_text(
        "line 2: write one co-I as 'Name <e-mail>'"
    )
    page.fill("textarea[name=cois]", "Carl Co <carl@example.org>")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Project 2024.1.00777.S registered (cycle 11).")
    pi_row = page.locator("#investigators tr[data-email='Red1@Example.org']")
    expect(pi_row.locator(".account")).to_have_text("red1 (Data reducer (staff))")

    # New MOUS from the project page (the code is filled in), with one EB.
    page.click("#new-mous")
    expect(page.locator("input[name=project]")).to_have_value("2024.1.00777.S")
    page.fill("input[name=uid]", "uid://A001/X777/X1")
    page.fill("input[name=sb_name]", "Serpens_a_06_TM1")
    page.fill("input[name=band]", "6")
    page.select_option("select[name=array]", "TE")
    page.fill("input[name=representative_frequency_ghz]", "230.5")
    page.fill("input[name=requested_rms_mjy]", "0.4")
    page.fill("input[name=rms_bandwidth_mhz]", "1875")
    page.fill("input[name=resolution_min_arcsec]", "1.2")
    page.fill("input[name=resolution_max_arcsec]", "0.8")
    page.select_option("select[name=goal]", "line")
    page.fill("textarea[name=eb_uids]", "uid://A002/X777/X1")
    page.click("#mous-form button[type=submit]")
    expect(page.locator("[data-field=resolution_min_arcsec] .error")).to_have_text(
        "The minimum resolution is larger than the maximum."
    )
    page.fill("input[name=resolution_max_arcsec]", "2.0")
    page.click("#mous-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("MOUS uid://A001/X777/X1 registered with 1 EB.")
    expect(page.locator("#investigators")).to_contain_text("Rosa Reducer (PI, account red1)")

    # A second EB from the MOUS page.
    page.click("#add-eb")
    page.fill("input[name=uid]", "uid://A002/X777/X2")
    page.click("#eb-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("EB uid://A002/X777/X2 added to uid://A001/X777/X1.")
    expect(page.locator("table.ebs tbody tr")).to_have_count(2)

    # Assigning it to the PI's own account is refused, with the rule, and changes nothing.
    page.select_option("#assign-form select[name=reducer]", label="RA · red1 (Data reducer (staff))")
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#refusal")).to_contain_text(
        "red1 cannot reduce uid://A001/X777/X1: they are PI of project 2024.1.00777.S"
    )
    expect(page.locator("#refusal")).to_contain_text("conflict-of-interest rule")
    expect(page.locator("#assignee")).to_have_text("nobody")

    # Another reducer gets it.
    page.select_option("#assign-form select[name=reducer]", label="RB · red2 (Data reducer (staff))")
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#assignee")).to_have_text("red2 (RB)")
    mous = Mous.objects.get(uid="uid://A001/X777/X1")
    assert (mous.state, mous.assignee, mous.created_by) == ("ASSIGNED", world.other_reducer, world.drm.user)
    assert sorted(mous.execution_blocks.values_list("uid", flat=True)) == [
        "uid://A002/X777/X1",
        "uid://A002/X777/X2",
    ]
