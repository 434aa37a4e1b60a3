"""Payment links: a public URL (`/l/{slug}`) whose form opens a checkout session for each customer."""
