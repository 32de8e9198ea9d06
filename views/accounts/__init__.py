"""Account screens: application, approval, set password, helpdesk lookup."""
