from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """Makes PortalAdminSite `admin.site`: every `@admin.register` and portal/urls.py use it unchanged."""

    default_site = "portal.admin_site.PortalAdminSite"
