"""Business rules for money pages (HS-style services: `<entity>_<action>`, keyword-only)."""
