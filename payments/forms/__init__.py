"""Forms of the money pages, one module per page: they check shape; services check rules."""
