"""Engine services: containers, images, exec, volumes, networks, events, build.

Services take and return domain values and raise dockyard.errors; they know
nothing of HTTP.
"""
