"""The chaos bench: the product under SIGKILLed workers, a restarted Temporal and a faulty
Salesforce (`python -m bench.chaos`). stack: the stack up and down; faults: each fault and how
it is undone; scenarios: which faults when, and what is checked afterwards."""
