"""Mail: confirmation and reminder jobs (procrastinate), templates, SMTP."""
