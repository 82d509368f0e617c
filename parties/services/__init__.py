"""Writes to the company's parties at FlashFX: each one a call through the client, then our
mirror updated from FlashFX's reply and an audit event, in one transaction.

- recipients.py, senders.py, sub_clients.py: create, edit, delete (sub-clients: create).
- payee.py: Confirmation of Payee of a recipient's BSB, account and name (advisory).
- calls.py: what they share: FlashFX's answers turned into PartyError / PartyRefused.
"""
