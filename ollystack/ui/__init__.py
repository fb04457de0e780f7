"""The browser UI: server-rendered pages (templates/ui/) whose scripts (static/ui/js/) read the REST API.

Each page module renders one template through :func:`ollystack.ui.pages.render_page`, which signs the user in
first, resolves the tenant they are looking at and tells the page what their role allows.
"""
