"""The service map page: the topology as a graph (Cytoscape), with the same facts as tables beside it.

The page's script reads ``/api/v1/topology`` (edges from the ``service_topology`` view) and
``/api/v1/services`` (RED per service from ``service_metrics_1m``); nothing is computed here.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page

# Error rates from which a service gets a red ring and an edge turns fully red.
HIGH_ERROR_RATE = 0.05


@ui_page
def service_map(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(
        request,
        "ui/service_map.html",
        "servicemap",
        "Service map",
        config={"highErrorRate": HIGH_ERROR_RATE},
    )
