"""Matching and onboarding: the parties both systems already hold, found, reviewed and linked
(match, --apply, --import-unmatched, --create-new), and held creates looked at again."""
