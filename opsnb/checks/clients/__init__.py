"""Thin clients of the external APIs the checks read: Vercel, Sentry, S3."""
