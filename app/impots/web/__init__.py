"""The web layer of the impôts application: routes, main controller, action controllers, responses, views.

``impots.create_app`` assembles it; nothing here reads files or opens connections at import time.
"""
