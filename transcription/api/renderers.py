"""DRF's browsable API (the HTML pages of /api/v1/ in a browser) under the Content-Security-Policy."""

from __future__ import annotations

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's pages float two of their buttons with inline styles: they get `style-src 'unsafe-inline'`
    added to the policy, as django-csp's `csp_update` decorator adds it (the response's `_csp_update`),
    and nothing else changes. Their scripts are static files already."""

    csp_update = {"style-src": ["'unsafe-inline'"]}

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = self.csp_update
        return super().render(data, accepted_media_type, renderer_context)
