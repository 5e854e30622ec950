"""Tickets and check-in at the door (PRODUCT.md, "Tickets and check-in").

- `codes`: ticket codes (100 random bits in 20 Crockford base32 characters), how they
  are shown and how a typed or scanned one is read back;
- `qr`: the QR code image of a ticket, for the confirmation mail;
- `models`, `schemas`, `service`, `router`: the `checkins` table and `/checkin`.
"""
