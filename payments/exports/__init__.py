"""Exports: every list as CSV or XLSX, with the filters on screen (docs/exports.md).

- registry.py: ExportList (filters read as the page reads them, rows from the page's own
  selector, columns with labels, kinds and which are sensitive) and register();
- lists.py: ours (deposits, payouts, payments, recipients, senders, the audit trail);
- formatting.py: one cell's spelling, in Python and in SQL (escaping, masking, zones);
- writers.py: CSV (COPY on PostgreSQL, an iterator elsewhere) and XLSX (XlsxWriter);
- jobs.py: export_begin (count, audit, job when large), the job, the pruning;
- the views are payments/views/exports.py, the panel payments/templatetags/exports.py.

Adding a list: register an ExportList (an app that payments may not import registers its own
from its AppConfig.ready()), then put `{% load exports %}{% export_panel "<name>" %}` on its
page, next to the filter form.
"""
