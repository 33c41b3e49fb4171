from django.urls import path

from . import views

urlpatterns = [
    path("conversations/<str:conversation_id>", views.conversation),
    path("conversations/<str:conversation_id>/messages", views.send),
    path("conversations/<str:conversation_id>/decisions", views.decide),
]
