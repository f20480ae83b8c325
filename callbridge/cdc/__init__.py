"""Change Data Capture: Salesforce changes acted on in seconds (`callbridge listen`, docs/change-data-capture.md)."""
