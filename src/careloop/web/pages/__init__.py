"""Server-rendered pages, one module per part of the app.

``home`` signs people in and out and shows the home page; ``entry`` is data
entry; ``dashboards`` the measure dashboards; ``knowledge`` the knowledge
library and its feedback; ``community`` learning communities and their
cycles. Every page calls domain functions, which decide who may see what;
:mod:`~careloop.web.pages.rendering` renders the templates.
"""
