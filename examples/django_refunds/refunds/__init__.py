"""A small Django app: a support chat whose refunds wait for a person's approval.

Every request may be served by a different worker process; the conversation lives in the
database (``DjangoConversationStore``), never in a worker's memory. See views.py.
"""
