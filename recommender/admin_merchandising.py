"""Django admin for merchandising: rules and experiments (staff only).

Imported by ``recommender/admin.py``; the admin site already limits every
page to staff with the model's permissions.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from recommender.models import Experiment, Rule, Variant


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = "__all__"

    def clean(self) -> dict:
        data = super().clean()
        # The model's clean() cannot see many-to-many values on a new rule.
        if data.get("target") == "items" and not data.get("items"):
            raise ValidationError({"items": "Choose at least one item."})
        return data


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = [
        "name",
        "kind",
        "target",
        "placement_label",
        "variant",
        "priority",
        "active",
        "updated",
    ]
    list_editable = ["active"]
    list_filter = ["active", "kind", "target", "placement"]
    search_fields = ["name", "tag", "category__name"]
    list_select_related = ["category", "variant__experiment"]
    autocomplete_fields = ["category", "items"]
    raw_id_fields = ["variant"]
    readonly_fields = ["updated"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "active", "priority"]}),
        (
            "Which items",
            {
                "fields": [
                    "target",
                    "category",
                    "tag",
                    "price",
                    "items",
                    "new_within_days",
                ]
            },
        ),
        ("Effect", {"fields": ["factor", "position", "cap"]}),
        ("Where", {"fields": ["placement", "variant", "updated"]}),
    ]

    @admin.display(ordering="placement", description="placement")
    def placement_label(self, obj: Rule) -> str:
        return obj.get_placement_display() or "all"


class VariantFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        live = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        total = sum(data.get("share") or 0.0 for data in live)
        if total > 1.0 + 1e-9:
            raise ValidationError(
                f"Traffic shares add up to {total:g}; at most 1 (the rest of the "
                "users keep the default engine)."
            )
        if self.instance.active and len(live) < 2:
            raise ValidationError("An experiment compares two or more variants.")


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 2
    fields = ["name", "share", "params"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "start", "end", "variant_count", "updated"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    readonly_fields = ["created", "updated"]
    inlines = [VariantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    @admin.display(description="variants")
    def variant_count(self, obj: Experiment) -> int:
        return len(obj.variants.all())
