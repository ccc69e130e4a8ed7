"""Tracking: order, chef and console sockets, the orders read model, /orders/{id}/track."""
