"""The public site on the root host."""

from __future__ import annotations

from django.views.generic import TemplateView


class LandingView(TemplateView):
    template_name = "tenants/landing.html"
