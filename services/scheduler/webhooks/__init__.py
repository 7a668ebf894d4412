"""Webhook deliveries: which events go where (payloads), how they are signed (signing), how they
are sent (sender) and the loop that does it across replicas (dispatcher)."""
