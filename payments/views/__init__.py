"""Staff pages for money, one module per page (payments/urls.py lists them)."""
