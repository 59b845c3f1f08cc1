"""Staff actions, confirmed before they run: a page lists the rows the action will touch and what
will happen to each (or why it will not), asks for a reason, and remembers the version of each
row as shown, so a row that changed in the meantime is refused instead of overwritten."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from tenants.admin_scoping import TenantScopedAdmin
from uploads.errors import DomainError
from uploads.models import Submission
from uploads.services import StaffAction, staff_action_refusal, staff_action_run

MAX_ROWS = 100  # one confirmation page, read by a person


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in each submission's timeline with your name, e.g. the ticket number.",
    )


def confirm_or_run(
    model_admin: TenantScopedAdmin,
    request: HttpRequest,
    action: StaffAction,
    queryset: QuerySet[Submission],
    *,
    done_url: str,
    hidden: list[tuple[str, str]],
) -> HttpResponse:
    """Shows the confirmation page (GET, or a POST without `confirm`), or runs the action on each
    row and reports per row (POST with `confirm` and a reason), then goes back to `done_url`."""
    rows = list(queryset.select_related("tenant").order_by("-created_at")[: MAX_ROWS + 1])
    operable = set(model_admin.operable(request, queryset).values_list("pk", flat=True))
    form = ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
    if len(rows) > MAX_ROWS:
        model_admin.message_user(
            request, f"Select at most {MAX_ROWS} submissions for one action; nothing was done.", messages.WARNING
        )
        return HttpResponseRedirect(done_url)
    if form.is_bound and form.is_valid():
        actor = f"staff:{request.user.get_username()}"
        for row in rows:
            _run_one(model_admin, request, action, row, operable, actor, form.cleaned_data["reason"])
        return HttpResponseRedirect(done_url)

    previews = []
    for row in rows:
        refusal = None if row.pk in operable else f"You may only view tenant {row.tenant_id}'s uploads."
        previews.append({"row": row, "refusal": refusal or staff_action_refusal(action=action, submission=row)})
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{action.label}: confirm",
        "opts": model_admin.model._meta,
        "action": action,
        "previews": previews,
        "applicable": sum(1 for p in previews if p["refusal"] is None),
        "form": form,
        "hidden": hidden,
        "done_url": done_url,
    }
    return TemplateResponse(request, "admin/uploads/submission/confirm_action.html", context)


def _run_one(
    model_admin: TenantScopedAdmin,
    request: HttpRequest,
    action: StaffAction,
    row: Submission,
    operable: set[int],
    actor: str,
    reason: str,
) -> None:
    # Messages start with a word: the admin capitalises the first letter of each one.
    name = f"Submission {row.tracking_id}"
    if row.pk not in operable:
        model_admin.message_user(
            request, f"{name}: not done. You may only view tenant {row.tenant_id}'s uploads.", messages.WARNING
        )
        return
    try:
        version = int(request.POST.get(f"version_{row.pk}", ""))
    except ValueError:
        model_admin.message_user(
            request, f"{name}: not done. The page did not say which version you saw.", messages.WARNING
        )
        return
    try:
        outcome = staff_action_run(action=action, submission=row, actor=actor, reason=reason, expected_version=version)
    except DomainError as exc:
        model_admin.message_user(request, f"{name}: not done. {exc.message}", messages.WARNING)
    else:
        model_admin.message_user(request, f"{name}: {outcome}", messages.SUCCESS)


def changelist_action(action: StaffAction) -> Any:
    """The staff action as a changelist action: the admin hands it the selected rows, it answers
    with the confirmation page, whose form posts back here with `confirm`."""

    def run(model_admin: TenantScopedAdmin, request: HttpRequest, queryset: QuerySet[Submission]) -> HttpResponse:
        hidden = [("action", action.name)] + [
            (helpers.ACTION_CHECKBOX_NAME, str(pk)) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        ]
        if request.POST.get("select_across") == "1":
            hidden.append(("select_across", "1"))
        return confirm_or_run(model_admin, request, action, queryset, done_url=request.get_full_path(), hidden=hidden)

    run.__name__ = action.name
    return admin.action(description=action.label, permissions=["operate"])(run)
