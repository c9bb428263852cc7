"""Pipelines: each wires the stages for one command, from loading through the run store to
measurement, and returns records for reporting.

    models + data -> snapshots -> measurement -> records -> run store -> report
"""
