"""Payment links: a public URL (`/l/{slug}`) that opens a checkout session for each customer."""
