"""What every router shares: its dependencies (`deps`)."""
