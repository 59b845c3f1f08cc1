"""Submissions for staff triage: a list to find them, a page that shows everything that happened
to one, and the actions operators take on them (each confirmed, each through a service)."""

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from tenants.admin_scoping import TenantScopedAdmin
from uploads.admin.actions import changelist_action, confirm_or_run
from uploads.admin.detail import submission_page
from uploads.admin.filters import FailedMessagesFilter, LanguageFilter, PriorityFilter, StuckFilter, TenantFilter
from uploads.admin.pagination import BoundedCountPaginator
from uploads.models import MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.selectors import (
    media_bytes_received,
    media_percent_received,
    submissions_matching,
)
from uploads.services import STAFF_ACTIONS

CSV_COLUMNS = [
    "trackingId",
    "tenantId",
    "artisanId",
    "stage",
    "message",
    "language",
    "priority",
    "files",
    "bytes",
    "totalBytes",
    "createdAt",
    "lastProgressAt",
    "lastError",
]


class SubmissionChangeList(ChangeList):
    """The list (and its CSV export) reads each row's files with their recorded bytes and its
    latest failed message in two queries for the page, whatever the number of rows or parts;
    the submission page and the actions need neither."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Submission]:
        failed = OutboxMessage.objects.filter(submission=OuterRef("pk"), status=OutboxMessage.Status.FAILED)
        return (
            super()
            .get_queryset(request, exclude_parameters)
            .prefetch_related("media")
            .annotate(failed_message=Subquery(failed.order_by("-created_at").values("last_error")[:1]))
        )


class _Echo:
    """csv.writer writes each row to this and we hand the text straight to the response."""

    def write(self, value: str) -> str:
        return value


@admin.register(Submission)
class SubmissionAdmin(TenantScopedAdmin):
    list_display = [
        "tracking_id",
        "tenant",
        "artisan_id",
        "stage_badge",
        "file_progress",
        "total_size",
        "age",
        "since_progress",
        "last_error",
    ]
    list_filter = [
        "stage",
        TenantFilter,
        LanguageFilter,
        PriorityFilter,
        StuckFilter,
        FailedMessagesFilter,
        "created_at",
    ]
    search_fields = ["tracking_id"]  # the search itself is submissions_matching (get_search_results)
    search_help_text = "A tracking id, media id, object key or artisan id, exactly as in the ticket."
    list_select_related = ["tenant"]
    list_per_page = 50
    paginator = BoundedCountPaginator
    show_full_result_count = False  # a second COUNT(*) of the whole table on every page: no
    show_facets = admin.ShowFacets.NEVER  # a COUNT per filter choice, over a million rows: no
    ordering = ["-created_at"]
    actions = [changelist_action(action) for action in STAFF_ACTIONS.values()]
    change_form_template = "admin/uploads/submission/triage.html"
    change_list_template = "admin/uploads/submission/change_list.html"
    fieldsets = ()  # the page is the triage template, not a form

    class Media:
        css = {"all": ["uploads/admin.css", "uploads/triage.css"]}

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SubmissionChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Submission], search_term: str
    ) -> tuple[QuerySet[Submission], bool]:
        if not search_term.strip():
            return queryset, False
        matching = submissions_matching(query=search_term, tenant_ids=None).values("pk")
        return queryset.filter(pk__in=matching), False  # queryset is already the staff member's tenants

    # Columns

    @admin.display(description="stage", ordering="stage")
    def stage_badge(self, submission: Submission) -> str:
        return format_html(
            '<span class="stage-badge stage-{}">{}</span>', submission.stage, submission.get_stage_display()
        )

    @admin.display(description="files")
    def file_progress(self, submission: Submission) -> str:
        return format_html_join(
            "",
            '<div class="file-progress"><span class="kind">{}</span> {} / {}{}</div>',
            (
                (m.kind, filesizeformat(media_bytes_received(m)), _size_or_unknown(m), _percent(m))
                for m in submission.media.all()
            ),
        )

    @admin.display(description="size")
    def total_size(self, submission: Submission) -> str:
        sizes = [m.size or m.declared_size for m in submission.media.all()]
        return filesizeformat(sum(s for s in sizes if s)) if any(sizes) else "—"

    @admin.display(description="age", ordering="created_at")
    def age(self, submission: Submission) -> str:
        return timesince(submission.created_at)

    @admin.display(description="last progress", ordering="last_progress_at")
    def since_progress(self, submission: Submission) -> str:
        return f"{timesince(submission.last_progress_at)} ago"

    @admin.display(description="last error")
    def last_error(self, submission: Submission) -> str:
        error = _error_summary(submission)
        return format_html('<span class="last-error" title="{}">{}</span>', error, error[:80]) if error else "—"

    # The submission page and its actions

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info)),
            path(
                "<path:object_id>/act/<str:name>/",
                self.admin_site.admin_view(self.act_view),
                name="{}_{}_act".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        submission = self.require_object(request, object_id)
        assert isinstance(submission, Submission)
        operable = self.operates(request, submission.tenant_id)
        context = {**(extra_context or {}), **submission_page(request, submission, operable=operable)}
        context["title"] = f"Submission {submission.tracking_id}"
        return super().change_view(request, object_id, form_url, context)

    def act_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        action = STAFF_ACTIONS.get(name)
        rows = self.get_queryset(request).filter(pk=unquote(object_id)) if object_id.isdigit() else None
        if action is None or rows is None or not rows.exists():
            raise Http404("No such submission or action.")
        if not self.has_operate_permission(request):
            raise PermissionDenied  # a viewer; an operator of another tenant is refused per row
        done_url = reverse("admin:uploads_submission_change", args=[object_id])
        return confirm_or_run(self, request, action, rows, done_url=done_url, hidden=[])

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The changelist as filtered and searched, as CSV, streamed a thousand rows at a time."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = changelist.get_queryset(request)
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(CSV_COLUMNS)
            for submission in rows.iterator(chunk_size=1000):
                yield writer.writerow([_cell(value) for value in _csv_row(submission)])

        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return StreamingHttpResponse(
            lines(),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="submissions-{stamp}.csv"'},
        )


def _size_or_unknown(media: MediaUpload) -> str:
    size = media.size or media.declared_size
    return filesizeformat(size) if size else "?"


def _percent(media: MediaUpload) -> str:
    if media.status in (MediaStatus.ABORTED, MediaStatus.EXPIRED):
        return f" · {media.status}"
    percent = media_percent_received(media)
    return "" if percent is None else f" · {percent}%"


def _error_summary(submission: Submission) -> str:
    if submission.error_details and submission.stage == Stage.FAILED:
        details = submission.error_details
        return (
            str(details.get("reason") or details.get("message") or details)
            if isinstance(details, dict)
            else str(details)
        )
    return getattr(submission, "failed_message", None) or ""


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a pipeline's message starting with "=")
    is kept as text."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_row(submission: Submission) -> list[Any]:
    files = list(submission.media.all())
    return [
        submission.tracking_id,
        submission.tenant_id,
        submission.artisan_id,
        submission.stage,
        submission.stage_message,
        submission.language,
        submission.priority,
        " ".join(f"{m.kind}:{m.media_id}:{m.status}" for m in files),
        sum(media_bytes_received(m) for m in files),
        sum((m.size or m.declared_size or 0) for m in files),
        submission.created_at.isoformat(),
        submission.last_progress_at.isoformat(),
        _error_summary(submission),
    ]
