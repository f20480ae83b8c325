"""The Salesforce emulator's Pub/Sub API: Change Data Capture events over gRPC (README: "Pub/Sub API")."""
