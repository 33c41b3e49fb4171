#!/usr/bin/env python
"""The refunds example's manage.py: ``python manage.py test refunds``, ``runserver``."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refunds.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
