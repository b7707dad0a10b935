# The two commands of README.md:  `make book`  and  `make test`.
# Both create .venv (Python 3.11 or 3.12) and install requirements.txt and cnn_helpers into it when needed.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: book test lint outputs clean weights

# ImageNet weights prepared beside the checkout (../shared/keras/models on machines without internet) go
# into Keras' own cache folder, where keras.applications finds them instead of downloading.
SHARED_WEIGHTS = $(wildcard ../shared/keras/models/*.h5)
KERAS_MODELS   = $(or $(KERAS_HOME),$(HOME)/.keras)/models

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "Python 3.11 or 3.12 needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## book: build the HTML site into _build/html (stored notebook outputs; warnings are errors)
book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

## weights: copy ../shared/keras/models/*.h5 (when present) into the Keras cache; elsewhere Keras downloads
weights:
ifneq ($(SHARED_WEIGHTS),)
	mkdir -p $(KERAS_MODELS) && cp -n $(SHARED_WEIGHTS) $(KERAS_MODELS)/
endif

## test: unit tests of cnn_helpers, then nbval re-executes every chapter in the smoke profile
test: $(STAMP) weights
	CNN_COURSE_PROFILE=smoke TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests chapters \
	    --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	    --nbval-cell-timeout 900 -p no:cacheprovider

## lint: ruff, Jupytext pairs in sync, and the GitHub workflows (schema + zizmor, offline)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline .github/workflows

clean:
	rm -rf _build $(VENV)

## outputs: re-execute chapters in the full profile and store their outputs in the .ipynb twins
##          (all chapters, or a few: make outputs CHAPTERS="chapters/02_parameters_and_memory.md")
CHAPTERS ?= $(wildcard chapters/*.md)
outputs: $(STAMP) weights
	for md in $(CHAPTERS); do \
	    CNN_COURSE_PROFILE=full TF_CPP_MIN_LOG_LEVEL=3 \
	        $(BIN)/jupytext --to ipynb --update-metadata '{"jupytext": {"formats": "ipynb,md:myst"}}' \
	        --execute "$$md" || exit 1; \
	done
