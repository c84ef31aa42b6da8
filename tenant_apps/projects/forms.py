from __future__ import annotations

from django import forms

from tenant_apps.projects.models import Task


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200)
    status = forms.ChoiceField(choices=Task.Status.choices, initial=Task.Status.TODO)
    assignee = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: object, members: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["assignee"].choices = [("", "Nobody"), *members]  # type: ignore[attr-defined]


class AttachmentForm(forms.Form):
    file = forms.FileField()
