"""Read models that span the apps: they import from any app, and no app imports them."""
