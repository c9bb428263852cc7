"""Reporting, the last stage: builds the report envelope and renders it; nothing below imports it.

    models + data -> snapshots -> measurement -> records -> run store -> **report**
"""
