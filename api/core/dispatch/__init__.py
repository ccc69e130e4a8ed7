"""Dispatch: order intake, matching rounds, offers, courier and fleet actions, history."""
