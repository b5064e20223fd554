"""What a user's code imports to talk to seedtape."""
