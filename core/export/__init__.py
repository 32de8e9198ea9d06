"""Excel export: streamed, formula-safe workbooks and background export jobs."""
