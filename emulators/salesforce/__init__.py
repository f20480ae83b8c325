"""Salesforce emulator: a real HTTPS server speaking the Salesforce REST wire format.

Connector code talks to it exactly as it would to a real org; only the instance URL,
credentials and CA file differ.
"""
