"""The click stage: validating ``POST /clicks`` requests and registering clicks."""
