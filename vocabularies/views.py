"""The vocabularies page: list, create, edit and delete the signed-in user's vocabularies."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from speech.keyterms import limits
from vocabularies import selectors, services
from vocabularies.forms import VocabularyForm
from vocabularies.models import Vocabulary


def _own(request: HttpRequest, name: str) -> Vocabulary:
    vocabulary = selectors.vocabulary_get(user=request.user, name=name)
    if vocabulary is None:
        raise Http404("No such vocabulary.")
    return vocabulary


def _save(form: VocabularyForm, save) -> Vocabulary | None:
    """Run a service on a valid form; its refusals become the form's errors (None then)."""
    if not form.is_valid():
        return None
    try:
        return save(**form.cleaned_data)
    except services.VocabularyNameTaken as exc:
        form.add_error("name", ValidationError(exc.message, code=exc.code))
    except ValidationError as exc:
        form.add_error(None, exc)
    return None


@login_required
@require_http_methods(["GET", "POST"])
def vocabularies(request: HttpRequest) -> HttpResponse:
    form = VocabularyForm(request.POST) if request.method == "POST" else VocabularyForm()
    if request.method == "POST":
        created = _save(form, lambda **data: services.vocabulary_create(owner=request.user, **data))
        if created is not None:
            messages.success(request, f"Vocabulary “{created.name}” was created.")
            return redirect("vocabularies")
    return render(
        request,
        "vocabularies/vocabularies.html",
        {
            "vocabularies": list(selectors.vocabulary_list(user=request.user)),
            "form": form,
            "limits": limits(),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def vocabulary_edit(request: HttpRequest, name: str) -> HttpResponse:
    vocabulary = _own(request, name)
    if request.method == "POST":
        form = VocabularyForm(request.POST)
        saved = _save(form, lambda **data: services.vocabulary_update(vocabulary=vocabulary, **data))
        if saved is not None:
            messages.success(request, f"Vocabulary “{saved.name}” was saved.")
            return redirect("vocabularies")
        vocabulary.refresh_from_db()  # the page shows what is stored, not a half-applied edit
    else:
        form = VocabularyForm(initial={"name": vocabulary.name, "terms": vocabulary.terms})
    return render(
        request,
        "vocabularies/vocabulary_edit.html",
        {"vocabulary": vocabulary, "form": form, "limits": limits()},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def vocabulary_delete(request: HttpRequest, name: str) -> HttpResponse:
    vocabulary = _own(request, name)
    services.vocabulary_delete(vocabulary=vocabulary)
    messages.success(request, f"Vocabulary “{vocabulary.name}” was deleted.")
    return redirect("vocabularies")
