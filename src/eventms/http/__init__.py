"""Shared HTTP plumbing: the envelope, the errors, pagination."""
