"""Content packages: the registries careloop ships, each described for the engine.

A content package is one condition's registry as data: its forms, the concept
map from its fields to OMOP concepts, answer labels, measures and knowledge
objects, described by a :class:`careloop.core.content.ContentPackage`. The
engine (capture, warehouse, fhir, measures, knowledge, practice, …) never imports this
package — an import-linter contract says so — it asks
:func:`careloop.core.content.active_content` for what the active packages
registered. :mod:`careloop.content.ibd` is the one careloop ships, named in
:data:`careloop.core.content.DEFAULT_PLUGINS`; others come from the entry-point
group ``careloop.content``. docs/content.md says how to add a condition.
"""
