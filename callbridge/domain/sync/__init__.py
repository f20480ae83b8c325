"""Contact sync between Salesforce and Genesys external contacts (pure parts)."""
